<?php
/**
 * The visit cookies wait for consent to statistics through the WP Consent API when it is
 * active, and are set as before when it is not.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class ConsentTest extends TapTestCase {

	protected function setUp(): void {
		require_once dirname( __DIR__ ) . '/doubles/wp-consent-api.php';
		parent::setUp();
	}

	/** A returning visitor: visit cookies from an earlier page, plus the consent cookie given. */
	private function visitor( array $consent ) {
		$this->new_request( array( 'visit_start_time' => (string) ( $this->now - 95 ), 'tap_pages_viewed' => '4' ) + $consent );
	}

	private function checkout( $id ) {
		$order = tap_test_make_order( array( 'id' => $id ) );
		do_action( 'woocommerce_store_api_checkout_order_processed', $order );
		wc_get_order( $id )->update_status( 'processing' );
		$events = $this->log_events();
		return end( $events );
	}

	public function test_without_the_consent_api_the_cookies_are_set_as_before(): void {
		$code = '$jar = new TAP_Recording_Cookie_Jar(); $plugin = new TAP_Plugin( $jar ); $plugin->register_hooks();'
			. ' do_action( "template_redirect" );'
			. ' echo json_encode( array( function_exists( "wp_has_consent" ), array_column( $jar->sent, "name" ) ) );';
		$this->assertSame( '[false,["visit_start_time","tap_pages_viewed"]]', $this->run_child( $code ) );
	}

	public function test_opt_in_without_consent_sets_no_cookie_and_reads_none(): void {
		$GLOBALS['tap_consent']['type'] = 'optin';
		$this->new_request( array() );
		do_action( 'template_redirect' );
		$this->assertSame( array(), $this->jar->sent, 'no Set-Cookie' );

		// Visit cookies present anyway (set before the banner was installed): not read at checkout.
		$this->visitor( array() );
		$event = $this->checkout( 1101 );
		$this->assertSame( 0, $event['duration_session'] );
		$this->assertSame( 1, $event['pages_viewed'] );
		$this->assertSame( '0', wc_get_order( 1101 )->get_meta( TAP_Order_Logger::META_DURATION ) );
	}

	public function test_opt_in_with_consent_to_statistics_measures_the_visit(): void {
		$GLOBALS['tap_consent']['type'] = 'optin';
		$this->new_request( array( 'wp_consent_statistics' => 'allow' ) );
		do_action( 'template_redirect' );
		$this->assertSame( array( 'visit_start_time', 'tap_pages_viewed' ), array_column( $this->jar->sent, 'name' ) );

		$this->visitor( array( 'wp_consent_statistics' => 'allow' ) );
		$event = $this->checkout( 1102 );
		$this->assertSame( 95, $event['duration_session'] );
		$this->assertSame( 4, $event['pages_viewed'] );
	}

	public function test_consent_to_another_category_is_not_enough(): void {
		$GLOBALS['tap_consent']['type'] = 'optin';
		$this->new_request( array( 'wp_consent_marketing' => 'allow', 'wp_consent_statistics-anonymous' => 'allow' ) );
		do_action( 'template_redirect' );
		$this->assertSame( array(), $this->jar->sent );
	}

	public function test_withdrawn_consent_deletes_the_visit_cookies(): void {
		$GLOBALS['tap_consent']['type'] = 'optin';
		$this->visitor( array( 'wp_consent_statistics' => 'deny' ) );
		do_action( 'template_redirect' );
		$this->assertSame( array( 'visit_start_time', 'tap_pages_viewed' ), array_column( $this->jar->sent, 'name' ) );
		foreach ( $this->jar->sent as $cookie ) {
			$this->assertSame( '', $cookie['value'] );
			$this->assertSame( 1, $cookie['options']['expires'], 'expired: deleted' );
		}
		$this->assertArrayNotHasKey( 'visit_start_time', $_COOKIE );

		// Without any visit cookie there is nothing to delete: no header at all.
		$this->new_request( array( 'wp_consent_statistics' => 'deny' ) );
		do_action( 'template_redirect' );
		$this->assertSame( array(), $this->jar->sent );
	}

	public function test_opt_out_region_measures_until_the_visitor_refuses(): void {
		$GLOBALS['tap_consent']['type'] = 'optout';
		$this->new_request( array() );
		do_action( 'template_redirect' );
		$this->assertCount( 2, $this->jar->sent );

		$this->new_request( array( 'wp_consent_statistics' => 'deny' ) );
		do_action( 'template_redirect' );
		$this->assertSame( array(), $this->jar->sent );
	}

	public function test_no_consent_type_means_no_banner_and_the_cookies_are_set(): void {
		$this->new_request( array() );
		do_action( 'template_redirect' );
		$this->assertCount( 2, $this->jar->sent );
	}

	public function test_consent_is_asked_for_statistics_by_this_plugin(): void {
		$asked = array();
		add_filter( 'wp_has_consent', static function ( $has, $category, $requested_by ) use ( &$asked ) {
			$asked[] = array( $category, $requested_by );
			return $has;
		}, 10, 3 );
		do_action( 'template_redirect' );
		$this->assertContains( array( 'statistics', 'tap-order-logger/tap-order-logger.php' ), $asked );
	}

	public function test_compliance_is_declared_to_the_consent_api(): void {
		$this->assertTrue( consent_api_registered( 'tap-order-logger/tap-order-logger.php' ) );
		tap_test_reset_hooks();
		$this->assertFalse( consent_api_registered( 'tap-order-logger/tap-order-logger.php' ), 'because of the plugin\'s filter' );
	}

	public function test_cookies_are_described_to_the_consent_api(): void {
		do_action( 'init' );
		$cookies = $GLOBALS['tap_consent']['cookies'];
		$this->assertSame( array( 'visit_start_time', 'tap_pages_viewed' ), array_keys( $cookies ) );
		foreach ( $cookies as $cookie ) {
			$this->assertSame( 'statistics', $cookie['category'] );
			$this->assertSame( 'TAP Order Logger', $cookie['plugin_or_service'] );
			$this->assertSame( 'HTTP', $cookie['type'] );
			$this->assertNotSame( '', $cookie['cookie_function'] );
		}
	}

	public function test_a_filter_can_refuse_the_cookies_without_the_consent_api(): void {
		add_filter( 'tap_visit_cookies_allowed', '__return_false' );
		do_action( 'template_redirect' );
		$this->assertSame( array(), $this->jar->sent );
		$this->assertSame( array( 'duration_session' => 0, 'pages_viewed' => 1 ), $this->plugin->session->snapshot() );
	}
}

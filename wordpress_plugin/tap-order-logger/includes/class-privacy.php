<?php
/**
 * WordPress privacy tools: personal-data exporter and eraser, privacy-policy text.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * What the plugin keeps about a customer: on each of their orders, the visit figures
 * (`_tap_duration_session`, `_tap_pages_viewed`, `_tap_session_captured_at`) and the times the
 * order's event lines were written (`_tap_logged` for paid, `_tap_logged_cancelled`,
 * `_tap_logged_failed`, `_tap_logged_refund_<id>`). The lines themselves left WordPress: they
 * went to the orders log and from there to the TAP analytics pipeline, which WordPress cannot
 * reach. The exporter says so; the eraser removes the plugin's meta, marks the orders so no
 * further event of theirs is ever written, records the request on each order (an order note
 * starting `privacy_erasure_requested`) and fires
 * `tap_order_logger_privacy_erasure_requested( $email_address, $order_ids )` for whatever
 * forwards erasures to the pipeline. Nothing is written to the orders log: its lines are order
 * events only (contracts/order.schema.json), and an erasure is none of them.
 *
 * Facts from WordPress core (7.1):
 *
 * - Exporters are `$exporters[ $key ] = array( 'exporter_friendly_name' => ..., 'callback' => ... )`
 *   from the `wp_privacy_personal_data_exporters` filter; the callback gets
 *   `( $email_address, $page )` and returns `array( 'data' => array( array( 'group_id',
 *   'group_label', 'group_description', 'item_id', 'data' => array( array( 'name', 'value' ) ) ) ),
 *   'done' => bool )` (wp-admin/includes/ajax-actions.php:5027-5115;
 *   wp-includes/comment.php:4167-4173 and 4249-4270 for the shapes).
 * - Erasers are `array( 'eraser_friendly_name' => ..., 'callback' => ... )` from
 *   `wp_privacy_personal_data_erasers`; the callback returns `items_removed`, `items_retained`,
 *   `messages` (an array) and `done` (wp-admin/includes/ajax-actions.php:5218-5342).
 * - `wp_add_privacy_policy_content( $plugin_name, $policy_text )` works in wp-admin on
 *   `admin_init` or later only (wp-admin/includes/plugin.php:2411-2441).
 * - WooCommerce finds a customer's orders with `wc_get_orders( array( 'limit' => 10, 'page' =>
 *   $page, 'customer' => array( $email_address, $user_id ) ) )`, ten per page
 *   (woocommerce/woocommerce plugins/woocommerce/includes/class-wc-privacy-exporters.php:55-70).
 */
class TAP_Privacy {

	const KEY            = 'tap-order-logger';
	const PAGE_SIZE      = 10;
	const ERASURE_ACTION = 'tap_order_logger_privacy_erasure_requested';
	const NOTE_PREFIX    = 'privacy_erasure_requested';

	/**
	 * The plugin's own order meta with fixed keys, all removed by the eraser, like the refund
	 * flags (`_tap_logged_refund_<id>`, found by prefix).
	 */
	const META_KEYS = array(
		TAP_Order_Logger::META_LOGGED,
		TAP_Order_Logger::META_LOGGED_PREFIX . 'cancelled',
		TAP_Order_Logger::META_LOGGED_PREFIX . 'failed',
		TAP_Order_Logger::META_DURATION,
		TAP_Order_Logger::META_PAGES,
		TAP_Order_Logger::META_CAPTURED_AT,
	);

	/**
	 * Problem reporter.
	 *
	 * @var TAP_Reporter
	 */
	private $reporter;

	/**
	 * Returns the current Unix time.
	 *
	 * @var callable
	 */
	private $clock;

	/**
	 * Constructor.
	 *
	 * @param TAP_Reporter  $reporter Problem reporter.
	 * @param callable|null $clock    Returns the current Unix time (tests pass their own).
	 */
	public function __construct( TAP_Reporter $reporter, $clock = null ) {
		$this->reporter = $reporter;
		$this->clock    = is_callable( $clock ) ? $clock : 'time';
	}

	/**
	 * Hooks.
	 */
	public function register() {
		add_filter( 'wp_privacy_personal_data_exporters', array( $this, 'register_exporter' ) );
		add_filter( 'wp_privacy_personal_data_erasers', array( $this, 'register_eraser' ) );
		add_action( 'admin_init', array( $this, 'add_policy_content' ) );
	}

	/**
	 * `wp_privacy_personal_data_exporters`.
	 *
	 * @param array $exporters Exporters.
	 * @return array
	 */
	public function register_exporter( $exporters ) {
		$exporters = is_array( $exporters ) ? $exporters : array();
		$exporters[ self::KEY ] = array(
			'exporter_friendly_name' => __( 'TAP Order Logger (analytics)', 'tap-order-logger' ),
			'callback'               => array( $this, 'export' ),
		);
		return $exporters;
	}

	/**
	 * `wp_privacy_personal_data_erasers`.
	 *
	 * @param array $erasers Erasers.
	 * @return array
	 */
	public function register_eraser( $erasers ) {
		$erasers = is_array( $erasers ) ? $erasers : array();
		$erasers[ self::KEY ] = array(
			'eraser_friendly_name' => __( 'TAP Order Logger (analytics)', 'tap-order-logger' ),
			'callback'             => array( $this, 'erase' ),
		);
		return $erasers;
	}

	/**
	 * The exporter: per order of that customer, what the plugin stored and whether the order
	 * line went to the analytics pipeline.
	 *
	 * @param string $email_address E-mail address.
	 * @param int    $page          Page, from 1.
	 * @return array{data: array, done: bool}
	 */
	public function export( $email_address, $page = 1 ) {
		$orders = $this->orders_for( $email_address, $page );
		$data   = array();
		foreach ( $orders as $order ) {
			$fields = $this->order_fields( $order );
			if ( empty( $fields ) ) {
				continue;
			}
			$data[] = array(
				'group_id'          => 'tap-order-logger',
				'group_label'       => __( 'Order analytics (TAP Order Logger)', 'tap-order-logger' ),
				'group_description' => __( 'What the TAP Order Logger plugin recorded about the visit that led to the order, and whether the order was sent to the shop&#8217;s analytics pipeline.', 'tap-order-logger' ),
				'item_id'           => 'tap-order-' . $order->get_id(),
				'data'              => $fields,
			);
		}
		return array(
			'data' => $data,
			'done' => count( $orders ) < self::PAGE_SIZE,
		);
	}

	/**
	 * The eraser: removes the plugin's meta from that customer's orders, keeps them from being
	 * written again, and records the request.
	 *
	 * @param string $email_address E-mail address.
	 * @param int    $page          Page, from 1.
	 * @return array{items_removed: bool, items_retained: bool, messages: string[], done: bool}
	 */
	public function erase( $email_address, $page = 1 ) {
		$orders   = $this->orders_for( $email_address, $page );
		$removed  = false;
		$retained = false;
		$messages = array();
		$sent     = array();
		$now      = gmdate( 'Y-m-d\TH:i:s\Z', (int) call_user_func( $this->clock ) );

		foreach ( $orders as $order ) {
			try {
				$flags  = TAP_Order_Logger::logged_flags( $order );
				$logged = self::first_written( $flags );
				$had    = false;
				foreach ( array_unique( array_merge( self::META_KEYS, array_keys( $flags ) ) ) as $key ) {
					if ( '' !== (string) $order->get_meta( $key ) ) {
						$had = true;
					}
					$order->delete_meta_data( $key );
				}
				// Not personal data, and it keeps every later hook from writing the order again.
				$order->update_meta_data( TAP_Order_Logger::META_ERASED, $now );
				$order->save();
				$order->add_order_note(
					'' !== $logged
						/* translators: 1: the note's marker, privacy_erasure_requested; 2: when the order's first line was written (UTC). */
						? sprintf( __( '%1$s: TAP Order Logger removed its visit data from this order and will not write the order to the analytics log again. The order lines written since %2$s were sent to the analytics pipeline and must be erased there.', 'tap-order-logger' ), self::NOTE_PREFIX, $logged )
						/* translators: %s: the note's marker, privacy_erasure_requested. */
						: sprintf( __( '%s: TAP Order Logger removed its visit data from this order and will not write the order to the analytics log. No order line had been written.', 'tap-order-logger' ), self::NOTE_PREFIX )
				);
				$removed = $removed || $had;
				if ( '' !== $logged ) {
					$sent[] = (int) $order->get_id();
				}
			} catch ( \Throwable $e ) {
				$retained   = true;
				/* translators: 1: order number, 2: error message. */
				$messages[] = sprintf( __( 'TAP Order Logger could not erase its data from order #%1$d: %2$s', 'tap-order-logger' ), (int) $order->get_id(), $e->getMessage() );
				$this->reporter->error( sprintf( 'Privacy erasure: order %d: %s', (int) $order->get_id(), $e->getMessage() ) );
			}
		}

		if ( ! empty( $sent ) ) {
			// Honest: the copies in the pipeline are beyond WordPress's reach.
			$retained   = true;
			$messages[] = sprintf(
				/* translators: %s: order numbers. */
				__( 'TAP Order Logger: the order lines of orders %s (with the first name and e-mail address) were sent to the TAP analytics pipeline before this request. WordPress cannot erase them there: erase them in the pipeline too (Elasticsearch; Kafka keeps them until its retention ends).', 'tap-order-logger' ),
				'#' . implode( ', #', $sent )
			);
			do_action( self::ERASURE_ACTION, $email_address, $sent );
		}

		return array(
			'items_removed'  => $removed,
			'items_retained' => $retained,
			'messages'       => $messages,
			'done'           => count( $orders ) < self::PAGE_SIZE,
		);
	}

	/**
	 * `admin_init`: the suggested text for the site's privacy policy.
	 */
	public function add_policy_content() {
		if ( ! function_exists( 'wp_add_privacy_policy_content' ) ) {
			return;
		}
		wp_add_privacy_policy_content( __( 'TAP Order Logger', 'tap-order-logger' ), wp_kses_post( $this->policy_text() ) );
	}

	/**
	 * The suggested privacy-policy text (HTML).
	 *
	 * @return string
	 */
	public function policy_text() {
		$paragraphs = array(
			'<p class="privacy-policy-tutorial">' . esc_html__( 'TAP Order Logger sends every payment, refund, cancellation and failed payment of an order to the shop\'s own analytics pipeline. Adapt the text below to where the pipeline runs, who can read it and how long it keeps data.', 'tap-order-logger' ) . '</p>',
			'<p><strong class="privacy-policy-tutorial">' . esc_html__( 'Suggested text:', 'tap-order-logger' ) . ' </strong>' . esc_html__( 'When your order is paid, refunded, cancelled or its payment fails, we record the order number, its status, date, currency, total, payment method, the products bought, your customer number, your billing first name and e-mail address, how long your visit lasted and how many pages you viewed. We write this to a file on our server that is not accessible from the web, and our analytics system (which we run ourselves) reads it to produce sales statistics.', 'tap-order-logger' ) . '</p>',
			'<p>' . esc_html__( 'To measure the visit we set two cookies, visit_start_time (when the visit started) and tap_pages_viewed (pages viewed), which expire after one day and are deleted when an order is placed. Where our cookie banner asks for it, they are set only if you accept statistics cookies; without them your order is recorded with no visit figures.', 'tap-order-logger' ) . '</p>',
			'<p>' . esc_html__( 'You can ask for a copy of this data or for its erasure. An erasure removes the visit data from your orders in the shop and stops them from being sent again; copies already in the analytics system are erased there on request, and its message queue keeps them until its retention period ends.', 'tap-order-logger' ) . '</p>',
		);
		return implode( "\n", $paragraphs );
	}

	/**
	 * The rows the exporter shows for one order, empty when the plugin stored nothing on it.
	 *
	 * @param WC_Order $order Order.
	 * @return array<int, array{name: string, value: string}>
	 */
	private function order_fields( $order ) {
		$fields   = array();
		$flags    = TAP_Order_Logger::logged_flags( $order );
		$logged   = self::first_written( $flags );
		$duration = (string) $order->get_meta( TAP_Order_Logger::META_DURATION );
		$pages    = (string) $order->get_meta( TAP_Order_Logger::META_PAGES );
		$captured = (string) $order->get_meta( TAP_Order_Logger::META_CAPTURED_AT );
		$erased   = (string) $order->get_meta( TAP_Order_Logger::META_ERASED );

		if ( '' === $logged . $duration . $pages . $captured . $erased ) {
			return array();
		}
		$fields[] = array(
			'name'  => __( 'Order', 'tap-order-logger' ),
			'value' => '#' . $order->get_id(),
		);
		if ( '' !== $duration ) {
			$fields[] = array(
				'name'  => __( 'Visit duration before the order (seconds)', 'tap-order-logger' ),
				'value' => $duration,
			);
		}
		if ( '' !== $pages ) {
			$fields[] = array(
				'name'  => __( 'Pages viewed in that visit', 'tap-order-logger' ),
				'value' => $pages,
			);
		}
		if ( is_numeric( $captured ) ) {
			$fields[] = array(
				'name'  => __( 'Visit recorded at (UTC)', 'tap-order-logger' ),
				'value' => gmdate( 'Y-m-d H:i:s', (int) $captured ),
			);
		}
		$fields[] = array(
			'name'  => __( 'Sent to the analytics pipeline', 'tap-order-logger' ),
			'value' => '' !== $logged
				/* translators: %s: when the order's first line was written (UTC). */
				? sprintf( __( 'Yes, at %s and with each later payment, refund, cancellation or failure of the order: order number, date, status, currency, total, payment method, products, customer number, billing first name, e-mail address, visit duration and pages viewed were written to the orders log read by the TAP analytics pipeline.', 'tap-order-logger' ), $logged )
				: __( 'No', 'tap-order-logger' ),
		);
		if ( '' !== $erased ) {
			$fields[] = array(
				'name'  => __( 'Erasure requested at (UTC)', 'tap-order-logger' ),
				'value' => $erased,
			);
		}
		return $fields;
	}

	/**
	 * When the order's first line was written, '' when none was.
	 *
	 * @param array<string, string> $flags TAP_Order_Logger::logged_flags().
	 * @return string
	 */
	private static function first_written( array $flags ) {
		if ( empty( $flags ) ) {
			return '';
		}
		sort( $flags ); // UTC times as Y-m-d\TH:i:s\Z sort as text.
		return (string) $flags[0];
	}

	/**
	 * One page of the customer's orders, found as WooCommerce's own exporter finds them.
	 *
	 * @param string $email_address E-mail address.
	 * @param int    $page          Page, from 1.
	 * @return WC_Order[]
	 */
	private function orders_for( $email_address, $page ) {
		if ( ! is_string( $email_address ) || '' === trim( $email_address ) || ! function_exists( 'wc_get_orders' ) ) {
			return array();
		}
		$customer = array( $email_address );
		$user     = function_exists( 'get_user_by' ) ? get_user_by( 'email', $email_address ) : false;
		if ( is_object( $user ) && ! empty( $user->ID ) ) {
			$customer[] = (int) $user->ID;
		}
		$orders = wc_get_orders(
			array(
				'limit'    => self::PAGE_SIZE,
				'page'     => max( 1, (int) $page ),
				'customer' => $customer,
			)
		);
		return array_values(
			array_filter(
				is_array( $orders ) ? $orders : array(),
				static function ( $order ) {
					return $order instanceof WC_Order;
				}
			)
		);
	}
}

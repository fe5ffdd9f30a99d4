<?php
/**
 * Reads and writes the visit cookies.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Thin wrapper over $_COOKIE and setcookie(): path /, HttpOnly, SameSite=Lax, Secure on HTTPS.
 * Writes also update $_COOKIE so later code in the same request sees the new value.
 */
class TAP_Cookie_Jar {

	/**
	 * A cookie's raw value, or null when absent or not a string.
	 *
	 * @param string $name Cookie name.
	 * @return string|null
	 */
	public function get( $name ) {
		if ( ! isset( $_COOKIE[ $name ] ) || ! is_string( $_COOKIE[ $name ] ) ) {
			return null;
		}
		$value = $_COOKIE[ $name ]; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput -- validated by the caller.
		return function_exists( 'wp_unslash' ) ? wp_unslash( $value ) : $value;
	}

	/**
	 * Sets a cookie.
	 *
	 * @param string $name    Name.
	 * @param string $value   Value.
	 * @param int    $expires Unix time it expires at.
	 * @return bool Whether the Set-Cookie header could be sent.
	 */
	public function set( $name, $value, $expires ) {
		$_COOKIE[ $name ] = (string) $value;
		return $this->emit( $name, (string) $value, $this->options( (int) $expires ) );
	}

	/**
	 * Deletes a cookie.
	 *
	 * @param string $name Name.
	 * @return bool Whether the Set-Cookie header could be sent.
	 */
	public function delete( $name ) {
		unset( $_COOKIE[ $name ] );
		return $this->emit( $name, '', $this->options( 1 ) );
	}

	/**
	 * The cookie attributes.
	 *
	 * @param int $expires Unix time.
	 * @return array
	 */
	public function options( $expires ) {
		return array(
			'expires'  => $expires,
			'path'     => '/',
			'domain'   => ( defined( 'COOKIE_DOMAIN' ) && COOKIE_DOMAIN ) ? COOKIE_DOMAIN : '',
			'secure'   => function_exists( 'is_ssl' ) && is_ssl(),
			'httponly' => true,
			'samesite' => 'Lax',
		);
	}

	/**
	 * Sends the header; a no-op once output has started.
	 *
	 * @param string $name    Name.
	 * @param string $value   Value.
	 * @param array  $options setcookie() options.
	 * @return bool
	 */
	protected function emit( $name, $value, array $options ) {
		if ( headers_sent() ) {
			return false;
		}
		return setcookie( $name, $value, $options );
	}
}

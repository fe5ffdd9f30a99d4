<?php
/**
 * Reports problems without ever interrupting the shop.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Sends messages to the WooCommerce logger (WooCommerce > Status > Logs, source
 * "tap-order-logger") when WooCommerce is loaded, and to PHP's error_log otherwise.
 */
class TAP_Reporter {

	const SOURCE = 'tap-order-logger';

	/**
	 * Reports an error.
	 *
	 * @param string $message What went wrong.
	 * @param array  $context Extra context for the WooCommerce logger.
	 */
	public function error( $message, array $context = array() ) {
		$this->report( 'error', $message, $context );
	}

	/**
	 * Reports a warning.
	 *
	 * @param string $message What looks wrong.
	 * @param array  $context Extra context for the WooCommerce logger.
	 */
	public function warning( $message, array $context = array() ) {
		$this->report( 'warning', $message, $context );
	}

	/**
	 * Writes one message; reporting itself must never throw.
	 *
	 * @param string $level   WooCommerce logger level method.
	 * @param string $message Message.
	 * @param array  $context Context.
	 */
	private function report( $level, $message, array $context ) {
		try {
			if ( function_exists( 'wc_get_logger' ) ) {
				$logger = wc_get_logger();
				if ( is_object( $logger ) && method_exists( $logger, $level ) ) {
					$logger->$level( (string) $message, array_merge( $context, array( 'source' => self::SOURCE ) ) );
					return;
				}
			}
		} catch ( \Throwable $e ) {
			// Fall through to error_log below.
			$message .= ' (WooCommerce logger failed: ' . $e->getMessage() . ')';
		}
		// phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log -- last-resort channel.
		error_log( '[' . self::SOURCE . '] ' . $level . ': ' . $message );
	}
}
